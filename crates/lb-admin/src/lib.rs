//! lb-admin
