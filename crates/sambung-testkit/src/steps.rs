//! The named steps of a long scenario test: when it fails, it says in which step, not only
//! on which line.

/// Say `steps.at("the member accepts the invitation")` as each step begins; a panic after it
/// is reported with that name.
pub struct Steps {
    current: String,
}

impl Steps {
    pub fn new() -> Steps {
        Steps {
            current: "the set-up".into(),
        }
    }

    /// The step that begins now.
    pub fn at(&mut self, step: &str) {
        self.current = step.to_owned();
    }
}

impl Default for Steps {
    fn default() -> Self {
        Steps::new()
    }
}

impl Drop for Steps {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("the test failed in the step: {}", self.current);
        }
    }
}
