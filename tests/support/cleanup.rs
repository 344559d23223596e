//! One guard that removes an app's containers and network when a test ends, even when it
//! fails: their names are global to the engine, and a failed test must not leave its app
//! running.

use super::{containers_of, docker};

/// Removes every container (any state) labelled with the app's name when dropped:
/// `let _cleanup = AppCleanup(&app);`.
pub struct AppCleanup<S: AsRef<str>>(pub S);

impl<S: AsRef<str>> Drop for AppCleanup<S> {
    fn drop(&mut self) {
        for name in containers_of(self.0.as_ref()) {
            docker(&["rm", "-f", &name]);
        }
        docker(&["network", "rm", &format!("mc-net-{}", self.0.as_ref())]);
    }
}
