# mpraft
