//! Line-based prompts over any reader and writer: a terminal in use, scripted bytes in
//! tests, a pipe in scripts. No terminal control codes, so every answer can be piped.

use std::io::{BufRead, Write};

#[derive(Debug)]
pub struct Prompter<R, W> {
    input: R,
    output: W,
    /// Write each answer after its prompt: a terminal echoes what is typed, a pipe does
    /// not, and a transcript without the answers cannot be read.
    echo: bool,
}

impl<R: BufRead, W: Write> Prompter<R, W> {
    pub fn new(input: R, output: W, echo: bool) -> Prompter<R, W> {
        Prompter {
            input,
            output,
            echo,
        }
    }

    /// Shows `prompt` (with `[default]` when there is one) and reads one line, trimmed.
    /// `None` when the input has ended.
    pub fn ask(&mut self, prompt: &str, default: Option<&str>) -> std::io::Result<Option<String>> {
        match default {
            Some(default) if !default.is_empty() => write!(self.output, "{prompt} [{default}]: ")?,
            _ => write!(self.output, "{prompt}: ")?,
        }
        self.output.flush()?;
        let mut line = String::new();
        if self.input.read_line(&mut line)? == 0 {
            writeln!(self.output)?;
            return Ok(None);
        }
        let answer = line.trim().to_owned();
        if self.echo {
            writeln!(self.output, "{answer}")?;
        }
        Ok(Some(answer))
    }

    /// One line of text (help, a heading, an error to fix).
    pub fn say(&mut self, text: &str) -> std::io::Result<()> {
        writeln!(self.output, "{text}")
    }

    pub fn into_output(self) -> W {
        self.output
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_the_default_and_reads_trimmed_lines_until_the_input_ends() {
        let mut prompter = Prompter::new(&b"  db1 \n\n"[..], Vec::new(), false);
        assert_eq!(
            prompter.ask("Name", Some("node1")).unwrap().as_deref(),
            Some("db1")
        );
        assert_eq!(prompter.ask("Address", None).unwrap().as_deref(), Some(""));
        assert_eq!(prompter.ask("More", None).unwrap(), None);
        let output = String::from_utf8(prompter.into_output()).unwrap();
        assert_eq!(output, "Name [node1]: Address: More: \n");
        let mut echoing = Prompter::new(&b"db1\n"[..], Vec::new(), true);
        echoing.ask("Name", Some("node1")).unwrap();
        assert_eq!(echoing.into_output(), b"Name [node1]: db1\n");
    }
}
