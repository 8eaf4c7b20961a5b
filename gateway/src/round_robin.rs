//! Kernel-side round robin over a group of `SO_REUSEPORT` listening sockets.
//!
//! By default the kernel picks the socket of a reuseport group for a new connection by hashing
//! the connection's addresses. That ignores load: 32 keep-alive connections split over two
//! workers land 16/16 only by chance, and 20/12 or worse is common; the worker with more
//! connections then sets the tail latency. [`attach`] loads a 21-instruction eBPF program of
//! type `BPF_PROG_TYPE_SK_REUSEPORT` into the group: it takes a ticket from a one-slot counter
//! map (an atomic fetch-and-add) and hands the connection to socket `ticket % n` of a
//! `REUSEPORT_SOCKARRAY` map, so the workers take new connections strictly in turn.
//!
//! Loading needs `CAP_BPF` (or root). Where the kernel refuses, the caller keeps the kernel's
//! hash, which is correct, only less even. If the program cannot pick a socket (one was closed),
//! it passes and the kernel hashes as before.
//!
//! The program is written as raw instructions because it is this small: a crate such as aya
//! would need an eBPF toolchain at build time for what amounts to the table below.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Why the round robin could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RoundRobinError {
    #[error("bpf({command}): {source}")]
    Bpf { command: &'static str, source: io::Error },
    #[error("the kernel's verifier refused the program ({source}): {log}")]
    Verifier { source: io::Error, log: String },
    #[error("setsockopt(SO_ATTACH_REUSEPORT_EBPF): {0}")]
    Attach(io::Error),
    #[error("a reuseport group needs 1 to {max} sockets, not {0}", max = i32::MAX)]
    GroupSize(usize),
}

// Command and type numbers from linux/bpf.h.
const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_MAP_TYPE_ARRAY: u32 = 2;
const BPF_MAP_TYPE_REUSEPORT_SOCKARRAY: u32 = 20;
const BPF_PROG_TYPE_SK_REUSEPORT: u32 = 21;
const HELPER_MAP_LOOKUP_ELEM: i32 = 1;
const HELPER_SK_SELECT_REUSEPORT: i32 = 82;
const SK_PASS: i32 = 1;

/// Attaches the round robin to the reuseport group that `sockets` (bound and listening, in
/// worker order) form. The kernel keeps the program and its maps alive as long as the group.
pub fn attach(sockets: &[RawFd]) -> Result<(), RoundRobinError> {
    let n = i32::try_from(sockets.len()).ok().filter(|&n| n > 0).ok_or(RoundRobinError::GroupSize(sockets.len()))?;
    let counter = create_map(BPF_MAP_TYPE_ARRAY, 8, 1)?;
    let group = create_map(BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, 8, n as u32)?;
    for (slot, &fd) in sockets.iter().enumerate() {
        update_map(&group, slot as u32, fd as u64)?;
    }
    let program = load(&program(counter.as_raw_fd(), group.as_raw_fd(), n))?;
    let fd = program.as_raw_fd();
    // SAFETY: the option value is a valid int that lives across the call.
    let rc = unsafe {
        libc::setsockopt(
            sockets[0],
            libc::SOL_SOCKET,
            libc::SO_ATTACH_REUSEPORT_EBPF,
            (&fd as *const RawFd).cast(),
            std::mem::size_of::<RawFd>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(RoundRobinError::Attach(io::Error::last_os_error()));
    }
    Ok(())
}

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
struct Insn {
    code: u8,
    regs: u8, // dst in the low nibble, src in the high one
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, regs: (src << 4) | dst, off, imm }
}

/// `dst = map` as the two-slot 64-bit load that the kernel resolves from a map fd.
const fn load_map(dst: u8, map: RawFd) -> [Insn; 2] {
    const BPF_PSEUDO_MAP_FD: u8 = 1;
    [insn(0x18, dst, BPF_PSEUDO_MAP_FD, 0, map), insn(0, 0, 0, 0, 0)]
}

/// The program, in the order the kernel runs it (r10 is the frame pointer).
fn program(counter: RawFd, group: RawFd, sockets: i32) -> Vec<Insn> {
    let mut p = vec![
        insn(0xbf, 6, 1, 0, 0),   // r6 = r1 (the context)
        insn(0x62, 10, 0, -4, 0), // *(u32 *)(r10 - 4) = 0 (the counter's key)
    ];
    p.extend(load_map(1, counter)); // r1 = counter map
    p.extend([
        insn(0xbf, 2, 10, 0, 0),                     // r2 = r10
        insn(0x07, 2, 0, 0, -4),                     // r2 += -4
        insn(0x85, 0, 0, 0, HELPER_MAP_LOOKUP_ELEM), // r0 = &counter[0]
        insn(0x15, 0, 0, 11, 0),                     // if r0 == 0 goto pass
        insn(0xb7, 1, 0, 0, 1),                      // r1 = 1
        insn(0xdb, 0, 1, 0, 0x01),                   // r1 = atomic_fetch_add((u64 *)r0, r1)
        insn(0x97, 1, 0, 0, sockets),                // r1 %= sockets
        insn(0x63, 10, 1, -8, 0),                    // *(u32 *)(r10 - 8) = r1 (the socket's slot)
        insn(0xbf, 1, 6, 0, 0),                      // r1 = context
    ]);
    p.extend(load_map(2, group)); // r2 = socket group map
    p.extend([
        insn(0xbf, 3, 10, 0, 0),                         // r3 = r10
        insn(0x07, 3, 0, 0, -8),                         // r3 += -8
        insn(0xb7, 4, 0, 0, 0),                          // r4 = 0 (flags)
        insn(0x85, 0, 0, 0, HELPER_SK_SELECT_REUSEPORT), // select group[slot]
        insn(0xb7, 0, 0, 0, SK_PASS),                    // pass: r0 = SK_PASS
        insn(0x95, 0, 0, 0, 0),                          // exit
    ]);
    p
}

/// `union bpf_attr` for `BPF_MAP_CREATE`.
#[repr(C)]
#[derive(Default)]
struct MapCreate {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
}

/// `union bpf_attr` for `BPF_MAP_UPDATE_ELEM`.
#[repr(C)]
struct MapUpdate {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// `union bpf_attr` for `BPF_PROG_LOAD`, up to the fields this module sets.
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
}

/// Calls `bpf(2)`; returns the non-negative result or the error.
fn bpf<T>(command: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a `repr(C)` prefix of `union bpf_attr` for `command`, valid for its
    // size; the kernel zero-extends the fields it has and this module does not set.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, command, attr as *mut T, std::mem::size_of::<T>() as libc::c_uint) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: `fd` was just returned by the kernel as a new descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

fn create_map(map_type: u32, value_size: u32, max_entries: u32) -> Result<OwnedFd, RoundRobinError> {
    let mut attr = MapCreate { map_type, key_size: 4, value_size, max_entries, ..Default::default() };
    bpf(BPF_MAP_CREATE, &mut attr).map(owned).map_err(|source| RoundRobinError::Bpf { command: "BPF_MAP_CREATE", source })
}

fn update_map(map: &OwnedFd, key: u32, value: u64) -> Result<(), RoundRobinError> {
    let mut attr =
        MapUpdate { map_fd: map.as_raw_fd() as u32, _pad: 0, key: &key as *const u32 as u64, value: &value as *const u64 as u64, flags: 0 };
    bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(drop).map_err(|source| RoundRobinError::Bpf { command: "BPF_MAP_UPDATE_ELEM", source })
}

fn load(insns: &[Insn]) -> Result<OwnedFd, RoundRobinError> {
    let license = c"Apache-2.0";
    let mut log = vec![0u8; 16 * 1024];
    let mut attr = ProgLoad {
        prog_type: BPF_PROG_TYPE_SK_REUSEPORT,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
    };
    bpf(BPF_PROG_LOAD, &mut attr).map(owned).map_err(|source| match source.raw_os_error() {
        // EPERM and ENOSYS say the kernel will not load programs at all; anything else is the
        // verifier's answer to this program, and its log says why.
        Some(libc::EPERM | libc::ENOSYS) => RoundRobinError::Bpf { command: "BPF_PROG_LOAD", source },
        _ => {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            RoundRobinError::Verifier { source, log: String::from_utf8_lossy(&log[..end]).trim().to_string() }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::own_sockets::reuseport_socket;
    use socket2::Socket;
    use std::collections::HashMap;
    use std::net::{SocketAddr, TcpStream};

    fn group(n: usize) -> (Vec<Socket>, SocketAddr) {
        let first = reuseport_socket("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = first.local_addr().unwrap().as_socket().unwrap();
        let mut sockets = vec![first];
        sockets.extend((1..n).map(|_| reuseport_socket(addr).unwrap()));
        (sockets, addr)
    }

    /// How many of the pending connections each socket of the group holds.
    fn accepted_per_socket(sockets: &[Socket]) -> Vec<usize> {
        sockets.iter().map(|s| std::iter::from_fn(|| s.accept().ok()).count()).collect()
    }

    /// The program is what the comments in `program` say, slot for slot: the jump skips to the
    /// final `r0 = SK_PASS`.
    #[test]
    fn the_lookup_failure_jumps_to_the_final_pass() {
        let p = program(7, 8, 2);
        assert_eq!(p.len(), 21);
        let jump = p.iter().position(|i| i.code == 0x15).unwrap();
        assert_eq!(p[jump + 1 + p[jump].off as usize], insn(0xb7, 0, 0, 0, SK_PASS));
        assert_eq!(p.last(), Some(&insn(0x95, 0, 0, 0, 0)));
    }

    /// 32 connections to a group of two (and of three) sockets land evenly, where the kernel's
    /// hash gives uneven splits for most address sets. Needs CAP_BPF, as the gateway does to use
    /// this; the test machine (root) has it, and the test says so if it does not.
    #[test]
    fn connections_go_to_the_sockets_in_turn() {
        for n in [2usize, 3] {
            let (sockets, addr) = group(n);
            let fds: Vec<RawFd> = sockets.iter().map(|s| s.as_raw_fd()).collect();
            attach(&fds).unwrap_or_else(|e| panic!("attaching the round robin needs CAP_BPF: {e}"));
            let clients: Vec<TcpStream> = (0..32).map(|_| TcpStream::connect(addr).unwrap()).collect();
            std::thread::sleep(std::time::Duration::from_millis(50));
            let counts = accepted_per_socket(&sockets);
            assert_eq!(counts.iter().sum::<usize>(), 32, "{counts:?}");
            let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
            assert!(max - min <= 1, "{n} sockets: {counts:?}");
            drop(clients);
        }
    }

    /// The same group without the program: the hash spreads by address, so over a few rounds
    /// at least one split is uneven (this shows the test above can fail).
    #[test]
    fn without_the_program_the_kernel_hash_decides() {
        let mut splits = HashMap::new();
        for _ in 0..8 {
            let (sockets, addr) = group(2);
            let clients: Vec<TcpStream> = (0..32).map(|_| TcpStream::connect(addr).unwrap()).collect();
            std::thread::sleep(std::time::Duration::from_millis(50));
            let counts = accepted_per_socket(&sockets);
            *splits.entry(counts[0].abs_diff(counts[1])).or_insert(0) += 1;
            drop(clients);
        }
        assert!(splits.keys().any(|&d| d > 1), "eight 16/16 splits by hash: {splits:?}");
    }
}
