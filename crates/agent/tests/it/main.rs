//! Agent tests against a real mariadbd with the real Galera provider: one single-node
//! cluster per test, served in-process on 127.0.0.1 with ports the OS hands out.

mod clustercheck;
mod files;
mod lifecycle;
mod limits;
mod support;
