//! `lb check`: loads the configuration exactly as a start would (file syntax and values,
//! duplicate prefixes, host names, the token file, the state file) and prints what would run
//! and what a start would warn about, binding nothing, as `nginx -t` and `haproxy -c` do. Exit
//! 0 when lb would start with it, 2 when not.

use lb_config::Summary;
use lb_runtime::{ConfigSource, RunError};

/// Loads `source` and prints the summary of what would run; the error is the start's.
pub fn run_check(source: &ConfigSource) -> Result<(), RunError> {
    let checked = source.check()?;
    let origin = source
        .file
        .as_ref()
        .map_or("the command line".to_string(), |p| p.display().to_string());
    println!("configuration ok: {origin}");
    println!("{}", Summary(&checked.config));
    for warning in &checked.warnings {
        println!("warning: {warning}");
    }
    Ok(())
}
