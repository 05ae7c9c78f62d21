import mpraft
mpraft.main()
