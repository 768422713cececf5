"""dudao domain (督导领域模型): events, commands, rules and policies. Pure: no I/O, no clock."""
