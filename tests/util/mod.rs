//! Helpers the integration tests share that [`rcmd::testing`] does not
//! offer, re-exported here for the ones every area uses:
//!
//! * [`temp`]: temp dirs, and a small disk that fills up (root).
//! * [`process`]: waiting on a condition, finding processes by a marker.
//! * [`cgroup`]: freezing a group, counting the groups that hold a process.
//! * [`server`]: `rcmd serve` as a child process of the real binary, on a
//!   fresh [`rcmd::testing::TestPki`], and clients for it.
//! * [`fleet`]: many such servers of one CA for fan-out, and hostile hosts.
//! * [`netns`]: network namespaces with a bridge (root, `ip`, `nft`).
//! * [`users`]: real unix users made for one test (root).
//! * [`proxy`]: a TCP proxy that cuts a connection mid-stream.

pub mod cgroup;
pub mod fleet;
pub mod netns;
pub mod process;
pub mod proxy;
pub mod server;
pub mod temp;
pub mod users;

pub use cgroup::{Frozen, populated_groups};
pub use process::{is_alive, marked_sleep, pids_matching, wait_no_process, wait_until};
pub use temp::{SmallDisk, TempDir};
