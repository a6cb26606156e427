"""KMS: customer managed keys, envelope encryption, and the data keys that encrypt the lake at rest."""
