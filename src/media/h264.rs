//! Just enough H.264 Annex B parsing to describe a track before its first frame is decoded: find the
//! SPS and PPS NAL units, read profile/constraints/level from the SPS, and build the WebCodecs codec
//! string (`avc1.PPCCLL`) and the `avcC` decoder configuration record (for MSE/fMP4 and WebCodecs
//! `description`). Input is untrusted bytes: every read is bounds-checked.

use bytes::{BufMut, Bytes, BytesMut};

/// NAL unit type of a sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// NAL unit type of a picture parameter set.
pub const NAL_PPS: u8 = 8;
/// NAL unit type of an IDR slice.
pub const NAL_IDR: u8 = 5;

/// Iterates over the NAL units (without start codes) of an Annex B byte stream.
pub fn nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut pos = find_start(data, 0);
    std::iter::from_fn(move || {
        let (_, begin) = pos?;
        let next = find_start(data, begin);
        let mut end = next.map_or(data.len(), |(sc, _)| sc);
        // A 4-byte start code's leading zero belongs to no NAL (trailing_zero_8bits).
        while end > begin && data[end - 1] == 0 && next.is_some() {
            end -= 1;
        }
        pos = next;
        Some(&data[begin..end])
    })
    .filter(|nal| !nal.is_empty())
}

/// Finds the next `00 00 01` at or after `from`: (index of the start code, index after it).
fn find_start(data: &[u8], from: usize) -> Option<(usize, usize)> {
    let hay = data.get(from..)?;
    hay.windows(3)
        .position(|w| w == [0, 0, 1])
        .map(|i| (from + i, from + i + 3))
}

/// The NAL unit type (low 5 bits of the header byte).
pub fn nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|b| b & 0x1f)
}

/// The fields of an SPS that name the decoder a stream needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpsInfo {
    /// 66 baseline, 77 main, 100 high, …
    pub profile_idc: u8,
    /// constraint_set0..5 flags and reserved bits, as in the SPS byte.
    pub constraint_flags: u8,
    /// Level × 10 (31 = level 3.1).
    pub level_idc: u8,
}

impl SpsInfo {
    /// Parses the first three payload bytes of an SPS NAL (header byte included in `nal`).
    pub fn parse(nal: &[u8]) -> Option<SpsInfo> {
        if nal_type(nal)? != NAL_SPS {
            return None;
        }
        // Emulation prevention (00 00 03) cannot occur in these bytes unless profile_idc is 0,
        // which is not a valid profile, so plain indexing is exact.
        let &[_, profile_idc, constraint_flags, level_idc, ..] = nal else {
            return None;
        };
        (profile_idc != 0).then_some(SpsInfo {
            profile_idc,
            constraint_flags,
            level_idc,
        })
    }

    /// Constrained baseline: profile 66 with constraint_set1 (what every browser decoder takes).
    pub fn is_constrained_baseline(&self) -> bool {
        self.profile_idc == 66 && self.constraint_flags & 0x40 != 0
    }

    /// The RFC 6381 / WebCodecs codec string, e.g. `avc1.42C01F`.
    pub fn codec_string(&self) -> String {
        format!(
            "avc1.{:02X}{:02X}{:02X}",
            self.profile_idc, self.constraint_flags, self.level_idc
        )
    }
}

/// The parameter sets found in an access unit (normally a keyframe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterSets {
    /// The SPS NAL unit, header byte included, no start code.
    pub sps: Bytes,
    /// The PPS NAL unit, header byte included, no start code.
    pub pps: Bytes,
    /// What the SPS says.
    pub info: SpsInfo,
}

impl ParameterSets {
    /// Finds the first SPS and PPS in an Annex B access unit; `None` if either is missing or the
    /// SPS is malformed.
    pub fn find(access_unit: &Bytes) -> Option<ParameterSets> {
        let mut sps = None;
        let mut pps = None;
        for nal in nal_units(access_unit) {
            match nal_type(nal) {
                Some(NAL_SPS) if sps.is_none() => sps = Some(nal),
                Some(NAL_PPS) if pps.is_none() => pps = Some(nal),
                _ => {}
            }
        }
        let (sps, pps) = (sps?, pps?);
        Some(ParameterSets {
            info: SpsInfo::parse(sps)?,
            sps: access_unit.slice_ref(sps),
            pps: access_unit.slice_ref(pps),
        })
    }

    /// The AVCDecoderConfigurationRecord (ISO 14496-15 `avcC`), 4-byte NAL lengths.
    pub fn avcc(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(11 + self.sps.len() + self.pps.len());
        b.put_u8(1);
        b.put_u8(self.info.profile_idc);
        b.put_u8(self.info.constraint_flags);
        b.put_u8(self.info.level_idc);
        b.put_u8(0xff); // 6 reserved bits + lengthSizeMinusOne = 3
        b.put_u8(0xe1); // 3 reserved bits + one SPS
        b.put_u16(self.sps.len() as u16);
        b.put_slice(&self.sps);
        b.put_u8(1); // one PPS
        b.put_u16(self.pps.len() as u16);
        b.put_slice(&self.pps);
        b.freeze()
    }
}

/// True if the access unit holds an IDR slice.
pub fn has_idr(access_unit: &[u8]) -> bool {
    nal_units(access_unit).any(|n| nal_type(n) == Some(NAL_IDR))
}

#[cfg(test)]
mod tests {
    use super::*;

    // AUD, SPS (constrained baseline 3.1, as x264 writes it), PPS, then an IDR slice header.
    const AU: &[u8] = &[
        0, 0, 0, 1, 0x09, 0xf0, //
        0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8, //
        0, 0, 0, 1, 0x68, 0xce, 0x0f, 0xc8, //
        0, 0, 1, 0x65, 0x88, 0x84, 0x00, 0x00,
    ];

    #[test]
    fn splits_nal_units_with_3_and_4_byte_start_codes() {
        let types: Vec<u8> = nal_units(AU).filter_map(nal_type).collect();
        assert_eq!(types, vec![9, 7, 8, 5]);
        let sps = nal_units(AU).nth(1).unwrap();
        assert_eq!(sps, &[0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8]);
        // trailing zeros inside the last NAL are kept (they are slice data)
        assert_eq!(nal_units(AU).last().unwrap(), &[0x65, 0x88, 0x84, 0, 0]);
        assert!(has_idr(AU));
        assert!(!has_idr(&AU[..24]));
    }

    #[test]
    fn reads_profile_level_and_builds_codec_string_and_avcc() {
        let au = Bytes::from_static(AU);
        let ps = ParameterSets::find(&au).unwrap();
        assert_eq!(ps.info.profile_idc, 66);
        assert!(ps.info.is_constrained_baseline());
        assert_eq!(ps.info.codec_string(), "avc1.42C01F");
        assert_eq!(ps.pps.as_ref(), &[0x68, 0xce, 0x0f, 0xc8]);
        // the parameter sets share the access unit's memory
        assert_eq!(ps.sps.as_ptr(), au[10..].as_ptr());
        let avcc = ps.avcc();
        assert_eq!(&avcc[..8], &[1, 0x42, 0xc0, 0x1f, 0xff, 0xe1, 0, 9]);
        assert_eq!(&avcc[8..17], ps.sps.as_ref());
        assert_eq!(&avcc[17..20], &[1, 0, 4]);
        assert_eq!(avcc.len(), 24);
    }

    #[test]
    fn malformed_input_is_rejected_not_panicking() {
        for bad in [
            &[][..],
            &[0, 0, 1],
            &[0, 0, 1, 0x67],
            &[0, 0, 1, 0x67, 0x00, 0x00, 0x1f, 0, 0, 1, 0x68, 1],
            &[0, 0, 1, 0x68, 0xce],
            &[0x67, 0x42, 0xc0, 0x1f],
        ] {
            assert!(
                ParameterSets::find(&Bytes::copy_from_slice(bad)).is_none(),
                "{bad:?}"
            );
        }
        assert!(
            !SpsInfo {
                profile_idc: 66,
                constraint_flags: 0,
                level_idc: 30
            }
            .is_constrained_baseline()
        );
    }
}
