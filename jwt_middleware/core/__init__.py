"""The sans-I/O decision core: no sockets, no clock reads, no awaits."""
