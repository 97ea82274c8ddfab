"""Training and export tools for the bundled models (torch): not part of the runtime package."""
