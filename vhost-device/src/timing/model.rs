//! The timing model proper: deterministic, in virtual nanoseconds, over
//! plain numbers (no protocol, no clock, no lock).
//!
//! A device has modeled resources, each a "busy until" virtual clock: the
//! link's two directions (host to device, device to host) and the media's
//! channels. A command is described by the bytes it puts on each
//! ([`Work`]); it starts at a virtual time the caller gives, its stages
//! run pipelined (each starts at the command's start or when its resource
//! frees, whichever is later, and holds the resource for bytes /
//! bandwidth), and it completes at the latest stage end plus its fixed
//! latencies (the link's per-command round trip, the media's read or
//! program latency), during which no resource is held: commands queued
//! together overlap their latencies as a device's internal queue does.
//!
//! Media bytes are cut into stripes (`stripe_bytes`), each put on the
//! channel that frees first, at `bandwidth / channels`: one large command
//! spreads over every channel, small ones at a low queue depth leave
//! channels idle, as on a real SSD.

pub use zonecopy_contract::timing::Counters;
use zonecopy_contract::timing::TimingProfile;

/// What one command puts on each resource.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Work {
    /// Bytes host to device: the command itself plus its data.
    pub h2c_bytes: u64,
    /// Bytes device to host: the completion plus its data.
    pub c2h_bytes: u64,
    /// Media bytes read for the host.
    pub media_read: u64,
    /// Media bytes programmed for the host.
    pub media_write: u64,
    /// Media bytes copied inside the device (read and programmed once each).
    pub media_copy: u64,
}

const NS_PER_S: u128 = 1_000_000_000;

/// Nanoseconds to move `bytes` at `bytes_per_s`, rounded up.
fn transfer_ns(bytes: u64, bytes_per_s: u64) -> u64 {
    let bps = u128::from(bytes_per_s.max(1));
    u64::try_from((u128::from(bytes) * NS_PER_S).div_ceil(bps)).unwrap_or(u64::MAX)
}

fn us_to_ns(us: f64) -> u64 {
    // Profiles refuse negative and non-finite numbers; `as` saturates.
    (us * 1000.0).round() as u64
}

/// One device's modeled resources and counters.
#[derive(Clone, Debug)]
pub struct Model {
    profile: TimingProfile,
    h2c_free: u64,
    c2h_free: u64,
    /// Busy-until of each media channel.
    channels: Vec<u64>,
    counters: Counters,
}

impl Model {
    pub fn new(profile: TimingProfile) -> Self {
        let n = usize::try_from(profile.media.channels.max(1)).unwrap_or(1);
        Model {
            profile,
            h2c_free: 0,
            c2h_free: 0,
            channels: vec![0; n],
            counters: Counters::default(),
        }
    }

    pub fn profile(&self) -> &TimingProfile {
        &self.profile
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// A link stage of `bytes` on the direction whose busy-until is
    /// `free`: (end, busy ns).
    fn link_stage(start: u64, free: &mut u64, bytes: u64, bytes_per_s: u64) -> (u64, u64) {
        if bytes == 0 {
            return (start, 0);
        }
        let busy = transfer_ns(bytes, bytes_per_s);
        let end = start.max(*free).saturating_add(busy);
        *free = end;
        (end, busy)
    }

    /// A media stage of `bytes` at `bytes_per_s` (the whole device's),
    /// striped over the channels: its end.
    fn media_stage(&mut self, start: u64, bytes: u64, bytes_per_s: u64) -> u64 {
        let n = self.channels.len() as u64;
        let per_channel = (bytes_per_s / n).max(1);
        let stripe = self.profile.media.stripe_bytes.max(1);
        let mut end = start;
        let mut left = bytes;
        while left > 0 {
            let chunk = left.min(stripe);
            left -= chunk;
            let Some(ch) = self.channels.iter_mut().min_by_key(|free| **free) else {
                break;
            };
            let busy = transfer_ns(chunk, per_channel);
            *ch = start.max(*ch).saturating_add(busy);
            end = end.max(*ch);
            self.counters.media_busy_ns = self.counters.media_busy_ns.saturating_add(busy);
        }
        end
    }

    /// Run one command that starts at virtual `start_ns`: its virtual
    /// completion.
    pub fn run(&mut self, start_ns: u64, w: &Work) -> u64 {
        let link = self.profile.link.clone();
        let media = self.profile.media.clone();
        let (h2c_end, h2c_busy) =
            Self::link_stage(start_ns, &mut self.h2c_free, w.h2c_bytes, link.bytes_per_s);
        let (c2h_end, c2h_busy) =
            Self::link_stage(start_ns, &mut self.c2h_free, w.c2h_bytes, link.bytes_per_s);
        let mut end = h2c_end.max(c2h_end);
        let mut latency = us_to_ns(link.command_latency_us);
        for (bytes, bps, read, program) in [
            (w.media_read, media.read_bytes_per_s, true, false),
            (w.media_write, media.write_bytes_per_s, false, true),
            (w.media_copy, media.copy_bytes_per_s, true, true),
        ] {
            if bytes == 0 {
                continue;
            }
            end = end.max(self.media_stage(start_ns, bytes, bps));
            if read {
                latency = latency.saturating_add(us_to_ns(media.read_latency_us));
            }
            if program {
                latency = latency.saturating_add(us_to_ns(media.program_latency_us));
            }
        }
        let done = end.saturating_add(latency);
        // Counters saturate: a user profile's numbers are not bounded
        // above, and a counter that stops is better than one that wraps.
        let c = &mut self.counters;
        let add = |c: &mut u64, n: u64| *c = c.saturating_add(n);
        add(&mut c.commands, 1);
        c.elapsed_ns = c.elapsed_ns.max(done);
        add(&mut c.link_h2c_busy_ns, h2c_busy);
        add(&mut c.link_c2h_busy_ns, c2h_busy);
        add(&mut c.link_h2c_bytes, w.h2c_bytes);
        add(&mut c.link_c2h_bytes, w.c2h_bytes);
        add(
            &mut c.media_read_bytes,
            w.media_read.saturating_add(w.media_copy),
        );
        add(
            &mut c.media_programmed_bytes,
            w.media_write.saturating_add(w.media_copy),
        );
        add(&mut c.media_copied_bytes, w.media_copy);
        done
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
