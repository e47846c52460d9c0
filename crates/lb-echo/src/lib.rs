//! lb-echo
