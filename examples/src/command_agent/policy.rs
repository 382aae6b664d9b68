//! Which programs may run with which arguments.
//!
//! A program is allowed by its absolute path; a caller may name it by that
//! path or, when no other allowed program shares it, by its file name.
//! Every argument must match at least one of the program's patterns in full
//! (each pattern is anchored: `[a-z]+` means `^(?:[a-z]+)$`); a program
//! without patterns takes no arguments. Whatever the patterns say, an
//! argument holding a shell metacharacter ([`SHELL_METACHARACTERS`]) is
//! refused: the agent never runs a shell, but an allowed program may hand
//! its arguments to one (a wrapper script, `ssh`, `xargs`), and a pattern
//! written too loosely should not become an injection.

use std::path::PathBuf;

use regex::Regex;

use crate::error::{Result, ToolError};

/// Characters no argument may hold: those a POSIX shell gives meaning to,
/// line breaks and NUL.
pub const SHELL_METACHARACTERS: &[char] = &[
    ';', '&', '|', '$', '`', '\\', '<', '>', '(', ')', '{', '}', '[', ']', '*', '?', '!', '~', '#',
    '\'', '"', '\n', '\r', '\0',
];

/// One allowed program, as configured.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Program {
    /// Its absolute path.
    pub path: PathBuf,
    /// Regular expressions an argument must match one of, in full.
    #[serde(default)]
    pub args: Vec<String>,
}

/// The compiled allow-list.
#[derive(Debug, Clone)]
pub struct Policy {
    programs: Vec<Allowed>,
    max_args: usize,
}

/// An allowed program with its compiled patterns.
#[derive(Debug, Clone)]
pub struct Allowed {
    /// Its absolute path (what runs).
    pub path: PathBuf,
    /// Its patterns as configured.
    pub patterns: Vec<String>,
    compiled: Vec<Regex>,
}

// === impl Policy ===

impl Policy {
    /// The allow-list of `programs` (one entry per path: patterns of
    /// repeated entries are merged), each taking at most `max_args`
    /// arguments.
    pub fn new(programs: &[Program], max_args: usize) -> Result<Self> {
        let mut allowed: Vec<Allowed> = Vec::new();
        for program in programs {
            let shown = program.path.display().to_string();
            if !program.path.is_absolute() {
                return Err(ToolError::config(format!(
                    "allowed program {shown:?}: give an absolute path"
                )));
            }
            let entry = match allowed.iter_mut().position(|a| a.path == program.path) {
                Some(index) => &mut allowed[index],
                None => {
                    allowed.push(Allowed {
                        path: program.path.clone(),
                        patterns: Vec::new(),
                        compiled: Vec::new(),
                    });
                    let last = allowed.len() - 1;
                    &mut allowed[last]
                }
            };
            for pattern in &program.args {
                let compiled = Regex::new(&format!("^(?:{pattern})$")).map_err(|error| {
                    // A syntax error is drawn over several lines; its last
                    // one says what is wrong.
                    let error = error.to_string();
                    let why =
                        error.lines().last().unwrap_or_default().trim_start_matches("error: ");
                    ToolError::config(format!(
                        "allowed program {shown:?}: argument pattern {pattern:?}: {why}"
                    ))
                })?;
                entry.patterns.push(pattern.clone());
                entry.compiled.push(compiled);
            }
        }
        Ok(Self { programs: allowed, max_args })
    }

    /// The allowed programs.
    pub fn programs(&self) -> &[Allowed] {
        &self.programs
    }

    /// Most arguments of one run.
    pub fn max_args(&self) -> usize {
        self.max_args
    }

    /// The program `name` with `args`, once every rule allows it.
    pub fn check(&self, name: &str, args: &[String]) -> Result<&Allowed> {
        let program = self.find(name)?;
        let shown = program.path.display().to_string();
        if args.len() > self.max_args {
            return Err(ToolError::TooManyArguments {
                program: shown,
                count: args.len(),
                max: self.max_args,
            });
        }
        for (index, arg) in args.iter().enumerate() {
            if let Some(ch) = arg.chars().find(|c| SHELL_METACHARACTERS.contains(c)) {
                return Err(ToolError::ShellMetacharacter {
                    program: shown,
                    index,
                    arg: arg.clone(),
                    ch,
                });
            }
            if !program.compiled.iter().any(|pattern| pattern.is_match(arg)) {
                return Err(ToolError::ArgumentNotAllowed {
                    program: shown,
                    index,
                    arg: arg.clone(),
                });
            }
        }
        Ok(program)
    }

    fn find(&self, name: &str) -> Result<&Allowed> {
        if let Some(program) = self.programs.iter().find(|p| p.path.as_os_str() == name) {
            return Ok(program);
        }
        let mut by_name =
            self.programs.iter().filter(|p| p.path.file_name().is_some_and(|file| file == name));
        match (by_name.next(), by_name.next()) {
            (Some(program), None) => Ok(program),
            _ => Err(ToolError::ProgramNotAllowed {
                program: name.to_owned(),
                allowed: self
                    .programs
                    .iter()
                    .map(|p| p.path.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }
}

#[cfg(test)]
mod tests;
