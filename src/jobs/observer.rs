//! Who is told of every job's start and end: the server counts them for its
//! metrics. The calls are made on the job's own start and finish paths, so an
//! observer must be cheap and must never block.

use std::fmt;

use super::JobStatus;

pub trait JobObserver: Send + Sync + fmt::Debug {
    /// A job was created, whether or not its process could start.
    fn started(&self);
    /// A job has finished: `status` is final (completed, or error for one
    /// that could not start). Called once per job, after `started`.
    fn finished(&self, status: &JobStatus);
}
