# Execution layer: transport, clock, flash storage, node loop (see DESIGN.md).
