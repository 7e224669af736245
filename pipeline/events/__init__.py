"""The canonical event: schema, validation, rejection reasons, time helpers, code lists."""
