//! PKI fixture (filled in by the PKI issue).
