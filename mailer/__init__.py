"""The reference mailer (``lifecycle mailer``): lifecycle.triggers -> SMTP, with its
built-in templates. A consumer of the engine's output, not part of the worker."""
