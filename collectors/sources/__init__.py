"""Where collectors read from, shared by several checks: PowerShell remoting (and the normalisation of
its answers), event log files, folder watching, file text over remoting, HTTP probing, TLS handshakes.

Sources know Windows and its protocols, never a check: they import the contract and the helpers only."""
