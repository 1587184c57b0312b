"""Pure planning algorithms on a compiled facility map: no I/O, no clock."""
