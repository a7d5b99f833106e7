//! Errors of the job pool's calls. A job that fails to *start* is not an error
//! of the pool: it is a job whose status is [`Status::Error`](super::Status).

use std::path::PathBuf;

use super::JobId;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("no job with id {0}")]
    NotFound(JobId),

    #[error(transparent)]
    DataDir(#[from] super::DataDirError),

    #[error("cannot use the data directory {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    #[error("the job records in {} cannot be used: {source}", path.display())]
    Records { path: PathBuf, source: super::records::RecordsError },

    #[error(transparent)]
    CommandLine(#[from] super::pool::CommandLineTooLong),

    #[error("cannot change the job's record: {0}")]
    Record(super::records::RecordsError),

    #[error("the job pool must be created inside a tokio runtime")]
    NoRuntime,

    #[error("quota reached: {0}")]
    Quota(super::limits::Quota),

    #[error("{0}")]
    Unsupported(crate::cgroup::Unsupported),

    #[error("the job pool is shutting down")]
    ShuttingDown,

    #[error("cannot write to the stdin of job {id}: {refused}")]
    Stdin { id: JobId, refused: super::stdin::StdinRefused },

    #[error("cannot read the output of job {id}: {source}")]
    ReadOutput { id: JobId, source: std::io::Error },
}
