//! Progress a person reads at a glance: one bar per file and one in total (bytes, rate, time
//! left) on a terminal; nothing drawn when stderr is not a terminal (scripts, CI, `--json`),
//! where each finished file is one line instead.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

#[derive(Clone)]
pub struct Progress {
    bars: MultiProgress,
    total: ProgressBar,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("a valid template")
        .progress_chars("=> ")
}

impl Progress {
    pub fn new(verb: &str, total_bytes: u64, quiet: bool) -> Progress {
        let drawn = !quiet && std::io::stderr().is_terminal();
        let bars = MultiProgress::with_draw_target(if drawn {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        let total = bars.add(ProgressBar::new(total_bytes));
        total.set_style(style(
            "{prefix:>10} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
        ));
        total.set_prefix(verb.to_string());
        Progress { bars, total }
    }

    /// A bar for one file.
    pub fn file(&self, name: &str, size: u64) -> ProgressBar {
        let bar = self.bars.insert_before(&self.total, ProgressBar::new(size));
        bar.set_style(style(
            "{wide_msg} [{bar:20}] {bytes}/{total_bytes} {binary_bytes_per_sec}",
        ));
        bar.set_message(name.to_string());
        bar
    }

    /// Bytes done (counted in the total as well as on the file's bar).
    pub fn advance(&self, file: &ProgressBar, bytes: u64) {
        file.inc(bytes);
        self.total.inc(bytes);
    }

    pub fn finish(&self) {
        self.total.finish_and_clear();
        self.bars.clear().ok();
    }
}
