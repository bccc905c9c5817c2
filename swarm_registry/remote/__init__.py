"""The execution layer: the only code that imports fabric (and, through it, paramiko).

`hostkeys` verifies host keys, `session` holds one SSH connection per host and runs
`Command`s on it, `executor` fans steps out over hosts in parallel and fills the `Run`
that the recap is printed from. `dial` (sockets only: no fabric, no paramiko) begins a run's first TCP
connections before the rest of this package is imported.
"""
