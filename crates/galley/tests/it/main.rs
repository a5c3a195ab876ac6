//! End-to-end tests of the `galley` command against real 3-node MariaDB Galera clusters
//! on 127.0.0.1 (and two data nodes with a real garbd), each in its own temporary state
//! directory on ports the OS hands out.

mod api;
mod arbitrator;
mod backup;
mod chaos;
mod cli;
mod cluster;
mod console;
mod controller;
mod deb;
mod deploy;
mod freeze;
mod init;
mod manage_cli;
mod metrics;
mod proxy;
mod rolling;
mod support;
mod tls;
