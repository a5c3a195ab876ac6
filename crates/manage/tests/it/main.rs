//! manage against real mariadbd processes with the real Galera provider: one cluster per
//! test (one node; two for replication), started by agents in-process on 127.0.0.1 with
//! ports checked free.

mod injection;
mod openstack;
mod operations;
mod replication;
mod support;
