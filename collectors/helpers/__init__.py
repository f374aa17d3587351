"""Small pure helpers with one job each, shared by the contract, the sources, the checks and the
runtime. They import nothing of the project outside this package."""
