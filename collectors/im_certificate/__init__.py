"""Check E3: OWA's IM settings (server name, certificate thumbprint) and the IM certificate (collector
``im_certificate``).

``collector`` (reading web.config or the setting override, and the certificates), ``im_settings``
(judging them), ``owa_web_config`` (parsing OWA's web.config)."""
