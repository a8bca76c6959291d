//! Capture from the test sources: frame counts, keyframe spacing, SPS, timestamps, Opus/PCM framing.
#![cfg(feature = "media")]

mod media_support;

use media_support::{Run, assert_monotonic, count_in_window};
use sioedge::contract::{Codec, MediaEvent};
use sioedge::media::h264::{self, ParameterSets};
use sioedge::media::{AudioCodec, AudioSource, AudioSpec, VideoEncoder, VideoSource, VideoSpec};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn test_video(width: u32, height: u32, fps: u32, keyframe_interval: f64) -> VideoSpec {
    VideoSpec {
        source: VideoSource::Test,
        width,
        height,
        fps,
        encoder: VideoEncoder::X264,
        keyframe_interval,
        ..Default::default()
    }
}

/// Runs one test video track for `secs` seconds of measured window and checks everything the
/// issue asks of a video track.
fn check_video(spec: VideoSpec, secs: u64) {
    let mut run = Run::new();
    run.capture().add_stream("cam", Some(&spec), None).unwrap();
    // startup + 0.5 s of settling + the window + a margin for the last frames to arrive
    assert!(
        run.wait_for(Duration::from_secs(15), |e| matches!(
            e,
            MediaEvent::Frame(_)
        )),
        "no frame within 15 s"
    );
    run.collect(Duration::from_millis(secs * 1000 + 1500));
    let stats = run.stop();

    // TrackUp first, with the codec string read from the SPS and the negotiated geometry
    let first = run.seen.first().expect("events");
    let MediaEvent::TrackUp { info, .. } = &first.event else {
        panic!("first event is not TrackUp: {:?}", first.event);
    };
    assert_eq!(info.codec, Codec::H264);
    assert_eq!(
        (info.width, info.height),
        (Some(spec.width), Some(spec.height))
    );
    assert_eq!(info.fps, Some(spec.fps));
    let json = serde_json::to_value(info).unwrap();
    let codec_string = info
        .codec_string
        .as_deref()
        .expect("capture sets the codec string");
    assert_eq!(json["codecString"], codec_string);
    assert_eq!(json["width"], spec.width);
    assert!(json.get("sampleRate").is_none());

    let frames = run.frames("cam", "video");
    assert!(frames[0].1.key, "first frame is not a keyframe");
    assert_monotonic(&frames);

    // frame count over a window measured on the capture clock, 0.5 s after the first frame
    let from = frames[0].1.t + 500_000;
    let n = count_in_window(&frames, from, secs * 1_000_000);
    let expected = (secs * spec.fps as u64) as usize;
    assert!(
        n.abs_diff(expected) <= 1,
        "{n} frames in {secs} s, expected {expected} ± 1"
    );
    let frame_us = 1_000_000 / spec.fps as u64;
    for (_, f) in &frames {
        assert!(
            f.duration.abs_diff(frame_us) <= 1,
            "duration {}",
            f.duration
        );
    }

    // keyframes exactly every fps × interval frames, each with SPS + PPS + IDR
    let k = spec.keyframe_distance() as usize;
    let keys: Vec<usize> = frames
        .iter()
        .enumerate()
        .filter(|(_, f)| f.1.key)
        .map(|(i, _)| i)
        .collect();
    assert!(keys.len() >= 2, "only {} keyframes", keys.len());
    for w in keys.windows(2) {
        assert_eq!(w[1] - w[0], k, "keyframes at {keys:?}, expected every {k}");
    }
    for &i in &keys {
        let data = &frames[i].1.data;
        let ps = ParameterSets::find(data).expect("keyframe without SPS/PPS");
        assert!(ps.info.is_constrained_baseline(), "profile {:?}", ps.info);
        assert_eq!(ps.info.codec_string(), codec_string);
        assert!(h264::has_idr(data));
        assert_eq!(
            info.avcc.as_ref().unwrap()[1..4],
            [66, ps.info.constraint_flags, ps.info.level_idc]
        );
    }
    assert!(codec_string.starts_with("avc1.42"), "{codec_string}");
    // one access unit per frame: no frame but the keyframes has parameter sets or an IDR
    for (i, (_, f)) in frames.iter().enumerate() {
        assert_eq!(h264::has_idr(&f.data), keys.contains(&i), "frame {i}");
    }

    // `t` is the capture time: in the past, and not by much
    let (at, last) = frames.last().unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let arrived = now - at.elapsed().as_micros() as u64;
    assert!(
        last.t <= arrived + 2_000 && arrived - last.t < 1_000_000,
        "t {} arrived {arrived}",
        last.t
    );

    let s = &stats[0];
    assert_eq!((s.dropped, s.restarts), (0, 0), "{s:?}");
    // x264 → h264parse buffers are one memory block: the frame's Bytes is that memory. openh264enc
    // emits one block per NAL unit, which the mapping merges (one copy, counted).
    let copies = if spec.encoder == VideoEncoder::Openh264 {
        s.frames
    } else {
        0
    };
    assert_eq!(s.merged, copies, "{s:?}");
}

#[test]
fn video_320x240_counts_keyframes_sps_and_timestamps() {
    check_video(test_video(320, 240, 30, 1.0), 3);
}

#[test]
fn video_320x240_half_second_keyframes_at_15_fps() {
    check_video(test_video(320, 240, 15, 0.5), 3);
}

#[test]
fn video_720p_counts_keyframes_sps_and_timestamps() {
    check_video(test_video(1280, 720, 30, 1.0), 3);
}

/// Frame size of an Opus packet from its TOC byte (RFC 6716 §3.1), in µs.
fn opus_frame_us(toc: u8) -> u64 {
    let config = toc >> 3;
    match config {
        0..=11 => [10_000, 20_000, 40_000, 60_000][(config % 4) as usize],
        12..=15 => [10_000, 20_000][(config % 2) as usize],
        _ => [2_500, 5_000, 10_000, 20_000][(config % 4) as usize],
    }
}

fn check_audio(spec: AudioSpec, secs: u64) {
    let mut run = Run::new();
    run.capture().add_stream("mic", None, Some(&spec)).unwrap();
    assert!(run.wait_for(Duration::from_secs(15), |e| matches!(
        e,
        MediaEvent::Frame(_)
    )));
    run.collect(Duration::from_millis(secs * 1000 + 1000));
    let stats = run.stop();
    assert_eq!((stats[0].dropped, stats[0].merged), (0, 0), "{stats:?}");
    let ups = run.ups("mic", "audio");
    assert_eq!(ups.len(), 1);
    let info = ups[0].1;
    let json = serde_json::to_value(info).unwrap();
    assert_eq!(json["sampleRate"], spec.sample_rate);
    assert_eq!(json["channels"], spec.channels);
    assert_eq!(json["track"], "audio");
    assert!(json.get("width").is_none());

    let frames = run.frames("mic", "audio");
    assert_monotonic(&frames);
    let frame_us = spec.frame_ms as u64 * 1000;
    // opusenc shortens the first packet's duration by the encoder lookahead (pre-skip)
    assert!(frames[0].1.duration <= frame_us);
    for (i, (_, f)) in frames.iter().enumerate() {
        assert!(f.key);
        if i > 0 {
            assert_eq!(f.duration, frame_us, "frame {i}");
        }
        match spec.codec {
            AudioCodec::Opus => {
                assert_eq!(opus_frame_us(f.data[0]), frame_us, "TOC {:#x}", f.data[0])
            }
            AudioCodec::Pcm => assert_eq!(
                f.data.len() as u64,
                spec.sample_rate as u64 * frame_us / 1_000_000 * 2 * spec.channels as u64
            ),
        }
    }
    // consecutive pts differ by exactly one frame
    for w in frames[1..].windows(2) {
        assert!(
            w[1].1.pts - w[0].1.pts == frame_us,
            "{} → {}",
            w[0].1.pts,
            w[1].1.pts
        );
    }
    let from = frames[0].1.t + 500_000;
    let n = count_in_window(&frames, from, secs * 1_000_000);
    let expected = (secs * 1000 / spec.frame_ms as u64) as usize;
    assert!(
        n.abs_diff(expected) <= 1,
        "{n} frames in {secs} s, expected {expected} ± 1"
    );
}

#[test]
fn opus_10ms_frames() {
    let spec = AudioSpec {
        source: AudioSource::Test,
        frame_ms: 10,
        ..Default::default()
    };
    check_audio(spec, 2);
}

#[test]
fn opus_20ms_frames_stereo() {
    let spec = AudioSpec {
        source: AudioSource::Test,
        frame_ms: 20,
        channels: 2,
        ..Default::default()
    };
    check_audio(spec, 2);
}

#[test]
fn pcm_20ms_chunks() {
    let spec = AudioSpec {
        source: AudioSource::Test,
        codec: AudioCodec::Pcm,
        ..Default::default()
    };
    check_audio(spec, 2);
}

#[test]
fn full_channel_drops_frames_without_stalling_and_resumes_at_a_keyframe() {
    let mut run = Run::with_capacity(8);
    let spec = test_video(320, 240, 30, 1.0);
    run.capture().add_stream("cam", Some(&spec), None).unwrap();
    // nobody reads for 2.5 s: the channel fills (TrackUp + 7 frames), everything else is dropped
    std::thread::sleep(Duration::from_millis(2500));
    let dropped_while_full = run.capture().stats()[0].dropped;
    run.collect(Duration::from_secs(2));
    let stats = run.stop();
    assert!(dropped_while_full >= 30, "{dropped_while_full} dropped");
    let frames = run.frames("cam", "video");
    assert_eq!(frames.len() as u64, stats[0].frames);
    // the 7 buffered frames, then a gap, then the stream resumes at a keyframe and keeps going
    assert!(
        frames.len() >= 7 + 40,
        "{} frames: capture stalled",
        frames.len()
    );
    assert!(frames[0].1.key);
    let resumed = &frames[7].1;
    assert!(resumed.key, "first frame after the drops is not a keyframe");
    assert!(
        resumed.pts - frames[6].1.pts > 1_000_000,
        "no gap: nothing was dropped?"
    );
    assert_monotonic(&frames);
    assert_eq!(stats[0].restarts, 0);
}

#[test]
fn openh264_is_constrained_baseline_with_keyframes_at_the_interval() {
    let spec = VideoSpec {
        encoder: VideoEncoder::Openh264,
        ..test_video(320, 240, 30, 1.0)
    };
    check_video(spec, 2);
}

#[test]
fn mjpeg_frames_are_jpeg_pictures() {
    let spec = VideoSpec {
        codec: sioedge::media::VideoCodec::Mjpeg,
        encoder: VideoEncoder::Auto,
        ..test_video(320, 240, 15, 1.0)
    };
    let mut run = Run::new();
    run.capture().add_stream("cam", Some(&spec), None).unwrap();
    assert!(run.wait_for(Duration::from_secs(15), |e| matches!(
        e,
        MediaEvent::Frame(_)
    )));
    run.collect(Duration::from_millis(2500));
    let stats = run.stop();
    assert_eq!(stats[0].merged, 0, "jpegenc buffers are shared, not copied");
    let ups = run.ups("cam", "video");
    assert_eq!(
        (ups[0].1.codec, ups[0].1.codec_string.as_deref()),
        (Codec::Mjpeg, Some("mjpeg"))
    );
    assert!(ups[0].1.avcc.is_none());
    let frames = run.frames("cam", "video");
    assert!(frames.len() >= 30, "{} frames", frames.len());
    for (_, f) in &frames {
        assert!(f.key && f.codec == Codec::Mjpeg);
        assert_eq!(&f.data[..2], &[0xff, 0xd8], "JPEG SOI");
        assert_eq!(&f.data[f.data.len() - 2..], &[0xff, 0xd9], "JPEG EOI");
    }
    assert_monotonic(&frames);
}
