//! The volatile write cache switch and the power cut (see
//! `storage::media::cache` for the cache itself).
//!
//! A power cut ([`Device::power_cut`]) drops every held block and rolls
//! every zone back to the state last persisted, with open zones coming back
//! CLOSED (ZBC-2 4.4.3.5, ZNS 2.1.1: open zones do not survive a power
//! cycle), and discards the data past the rolled-back write pointers: what
//! a restart after a real power loss finds. What was flushed (or written
//! with FUA) survives; so do blocks the cache wrote back when full, except
//! past the persisted write pointer of a sequential zone.

use super::{lock, Device};
use crate::storage::{error::Result, zone::ZoneCondition};

/// What a power cut did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PowerCut {
    /// Written blocks never made durable, now gone.
    pub dropped_blocks: u64,
    /// Zones whose condition or write pointer went back.
    pub zones_rolled_back: u64,
}

impl Device {
    /// Whether the volatile write cache is on (see `storage::media::cache`).
    pub fn volatile_cache(&self) -> bool {
        self.media().volatile()
    }

    /// Blocks written but not yet written back (0 with the cache off).
    pub fn cached_blocks(&self) -> u64 {
        self.media().held_blocks()
    }

    /// Turn the volatile write cache on or off. Either way everything
    /// written so far is made durable first, as by a flush; turned on, that
    /// state is what a power cut goes back to. Meant for an idle device: a
    /// write racing the switch may land on either side of it.
    pub fn set_volatile_cache(&self, on: bool) -> Result<()> {
        if on == self.media().volatile() {
            return Ok(());
        }
        if !on {
            self.flush()?;
            self.media().set_volatile(false)?;
            if let Some(meta) = &self.meta {
                lock(meta).durable = None;
            }
            self.media().sync()?;
            log::info!("volatile write cache off");
            return Ok(());
        }
        match (&self.meta, &self.zones) {
            (Some(meta), Some(table)) => {
                let mut meta = lock(meta);
                let mut table = lock(table);
                self.persist_dirty(&mut meta, &mut table)?;
                meta.durable = Some(table.zones().to_vec());
                self.media().set_volatile(true)?;
            }
            _ => {
                self.media().sync()?;
                self.media().set_volatile(true)?;
            }
        }
        log::info!("volatile write cache on: unflushed writes are lost at a power cut");
        Ok(())
    }

    /// Emulate a power loss: drop every write not made durable, roll the
    /// zones back to their persisted state, discard the data past the
    /// rolled-back write pointers. `None` when the volatile write cache is
    /// off: then every completed write counts as durable and there is
    /// nothing to lose. Listeners hear of the loss
    /// ([`super::ZoneListener::data_lost`]) after the device is unlocked.
    pub fn power_cut(&self) -> Result<Option<PowerCut>> {
        let cut = self.drop_unflushed()?;
        if cut.is_some_and(|c| c.dropped_blocks > 0 || c.zones_rolled_back > 0) {
            self.notify_data_lost();
        }
        Ok(cut)
    }

    fn drop_unflushed(&self) -> Result<Option<PowerCut>> {
        if !self.media().volatile() {
            return Ok(None);
        }
        let mut meta = self.meta.as_ref().map(lock);
        let mut table = self.zones.as_ref().map(lock);
        let mut cut = PowerCut {
            dropped_blocks: self.media().drop_held(),
            ..PowerCut::default()
        };
        let mut discards = Vec::new();
        if let (Some(table), Some(durable)) = (
            table.as_mut(),
            meta.as_mut().and_then(|m| m.durable.as_mut()),
        ) {
            for (i, d) in durable.iter().enumerate() {
                let Some(now) = table.zones().get(i).copied() else {
                    continue;
                };
                if !now.is_sequential() {
                    continue;
                }
                table.restore(i, d.cond, d.wp, d.non_seq);
                let after = table.zones()[i];
                if (after.cond, after.wp) != (now.cond, now.wp) {
                    cut.zones_rolled_back += 1;
                }
                if !matches!(after.cond, ZoneCondition::ReadOnly | ZoneCondition::Offline) {
                    if let Some(n) = after.end().blocks_since(after.wp).filter(|n| !n.is_zero()) {
                        discards.push((after.wp, n));
                    }
                }
            }
            // The durable state now includes the open -> closed moves.
            *durable = table.zones().to_vec();
        }
        for (lba, count) in discards {
            self.discard(lba, count)?;
        }
        log::info!(
            "power cut: {} unflushed block(s) dropped, {} zone(s) rolled back",
            cut.dropped_blocks,
            cut.zones_rolled_back
        );
        Ok(Some(cut))
    }
}
