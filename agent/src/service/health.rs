//! Whether each module answers: a module that fails a poll or misses its
//! deadline is unavailable until it answers again; requests for its
//! tokens are refused at once meanwhile, so a hung module holds up nobody.

use parking_lot::Mutex;

/// Each module's problem, by module path; `None` while it answers.
#[derive(Debug)]
pub(crate) struct Health {
    modules: Vec<(String, Mutex<Option<String>>)>,
}

impl Health {
    /// Every module available.
    pub(crate) fn new(names: impl IntoIterator<Item = String>) -> Health {
        Health {
            modules: names
                .into_iter()
                .map(|name| (name, Mutex::new(None)))
                .collect(),
        }
    }

    /// Why the module at `module` (its path, as `Token::module` spells
    /// it) is unavailable, or `None` when it answers.
    pub(crate) fn problem(&self, module: &str) -> Option<String> {
        self.modules
            .iter()
            .find(|(name, _)| name == module)
            .and_then(|(_, problem)| problem.lock().clone())
    }

    /// Records module `index`'s state; returns whether it changed.
    pub(crate) fn set(&self, index: usize, problem: Option<String>) -> bool {
        match self.modules.get(index) {
            Some((_, current)) => {
                let mut current = current.lock();
                let changed = *current != problem;
                *current = problem;
                changed
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_changes_once() {
        let health = Health::new(["/a.so".to_owned(), "/b.so".to_owned()]);
        assert_eq!(health.problem("/a.so"), None);
        assert!(health.set(0, Some("hung".into())));
        assert!(!health.set(0, Some("hung".into())));
        assert_eq!(health.problem("/a.so").as_deref(), Some("hung"));
        assert_eq!(health.problem("/b.so"), None);
        assert!(health.set(0, None));
        assert_eq!(health.problem("/a.so"), None);
        assert_eq!(health.problem("/c.so"), None);
    }
}
