//! Where a command finds its cluster: a state directory and the spec in it (or given).

use std::path::{Path, PathBuf};

/// Where a command finds its cluster: a state directory and the spec in it (or given).
#[derive(Debug, Clone)]
pub struct Location {
    pub dir: PathBuf,
    pub config: PathBuf,
}

impl Location {
    pub fn new(dir: PathBuf, config: Option<PathBuf>) -> Location {
        let dir = absolute(&dir);
        let config = config
            .map(|path| absolute(&path))
            .unwrap_or_else(|| dir.join("galley.toml"));
        Location { dir, config }
    }
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::Location;

    #[test]
    fn the_spec_defaults_to_galley_toml_in_the_state_directory() {
        let location = Location::new(PathBuf::from("/srv/cluster"), None);
        assert_eq!(location.dir, PathBuf::from("/srv/cluster"));
        assert_eq!(location.config, PathBuf::from("/srv/cluster/galley.toml"));
    }

    #[test]
    fn relative_paths_are_made_absolute_against_the_working_directory() {
        let cwd = std::env::current_dir().unwrap();
        let location = Location::new(
            PathBuf::from(".galley"),
            Some(PathBuf::from("conf/galley.toml")),
        );
        assert_eq!(location.dir, cwd.join(".galley"));
        assert_eq!(location.config, cwd.join("conf/galley.toml"));
    }
}
