//! sprocketd with real third-party clients and workers: Debian's
//! gearman-tools, php-gearman, Perl's Gearman::Client and Gearman::Worker,
//! pygearman, and raw sockets sending bad input. Each module is one client
//! family; `SPROCKET_TEST_SERVER=gearmand` runs the same scenarios against
//! the reference gearmand.

mod bad_input;
mod gearman_cli;
mod perl;
mod php;
mod python;
