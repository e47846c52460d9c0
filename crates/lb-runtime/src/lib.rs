//! lb-runtime
