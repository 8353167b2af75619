//! The same scenarios against sprocketd and gearmand 1.1.20, compared:
//! the admin text protocol, the binary protocol, and where sprocketd fixes
//! a gearmand bug on purpose (each such test asserts both behaviours).

mod admin;
mod binary;
mod http_protocol;
mod sprocket_fixes;
