//! `galley init`: hands the terminal to the `init` crate, which asks the questions,
//! checks each answer with the spec's own validation and writes galley.toml.

use std::io::IsTerminal as _;
use std::process::ExitCode;

pub use ::init::InitFlags;

use local::Location;

/// `galley init`. A terminal echoes what is typed; piped answers are echoed after their
/// prompts, so that the transcript can be read.
pub fn init(location: &Location, flags: &InitFlags) -> anyhow::Result<ExitCode> {
    let stdin = std::io::stdin();
    let echo = !stdin.is_terminal();
    ::init::init(
        stdin.lock(),
        std::io::stdout(),
        echo,
        &location.dir,
        &location.config,
        flags,
    )?;
    Ok(ExitCode::SUCCESS)
}
