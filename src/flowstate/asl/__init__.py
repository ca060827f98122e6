"""The Amazon States Language: parse, validate and compile definitions. Pure: no I/O."""
