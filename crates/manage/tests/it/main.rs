//! manage against a real mariadbd with the real Galera provider: one single-node cluster
//! per test, started by the agent in-process on 127.0.0.1 with ports checked free.

mod injection;
mod openstack;
mod operations;
mod support;
