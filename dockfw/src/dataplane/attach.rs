//! Attaching the programs to interfaces, pinning their links, and
//! re-adopting pinned links on restart without a gap (the link's program is
//! replaced atomically with `bpf_link_update`, as bpfman does).
//!
//! Links are pinned as `<pin dir>/links/<mode>/<iface>`, the mode being
//! `xdp-native`, `xdp-generic` or `tc`; the path records the effective mode,
//! which the kernel's link info does not carry for XDP. (bpffs refuses dots
//! in names, so a `.` in an interface name such as `eth0.100` is stored as
//! `%2E`.)

use std::{
    fmt, fs, io,
    path::{Path, PathBuf},
    str::FromStr,
};

use aya::programs::{
    ProgramError, TcAttachType, XdpMode,
    links::{FdLink, LinkError, PinnedLink},
    tc::SchedClassifierLink,
    xdp::XdpLink,
};
use tracing::{info, warn};

pub use super::pins::{detach_all, links_dir, pinned_modes};
use super::{
    Dataplane,
    pins::{link_pin, remove_link_pin},
};

/// The attach mode an operator asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestedMode {
    /// Native XDP, falling back to generic XDP with a warning.
    #[default]
    Auto,
    /// Native (driver) XDP only.
    Native,
    /// Generic (skb) XDP only.
    Generic,
    /// The TC ingress program (clsact/TCX).
    Tc,
}

impl FromStr for RequestedMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "auto" => Ok(Self::Auto),
            "native" => Ok(Self::Native),
            "generic" => Ok(Self::Generic),
            "tc" => Ok(Self::Tc),
            other => Err(format!(
                "unknown mode {other:?}: use auto, native, generic or tc"
            )),
        }
    }
}

/// The mode a program is really attached in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttachMode {
    /// Native XDP in the driver.
    XdpNative,
    /// Generic XDP in the stack.
    XdpGeneric,
    /// TC ingress.
    Tc,
}

impl AttachMode {
    /// The name used in pins, status and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            Self::XdpNative => "xdp-native",
            Self::XdpGeneric => "xdp-generic",
            Self::Tc => "tc",
        }
    }

    pub(super) const ALL: [Self; 3] = [Self::XdpNative, Self::XdpGeneric, Self::Tc];

    fn satisfies(self, requested: RequestedMode) -> bool {
        matches!(
            (requested, self),
            (RequestedMode::Auto, Self::XdpNative | Self::XdpGeneric)
                | (RequestedMode::Native, Self::XdpNative)
                | (RequestedMode::Generic, Self::XdpGeneric)
                | (RequestedMode::Tc, Self::Tc)
        )
    }
}

impl fmt::Display for AttachMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A program attached to an interface.
#[derive(Debug)]
pub struct Attachment {
    /// Interface name.
    pub iface: String,
    /// Interface index.
    pub ifindex: u32,
    /// Effective mode.
    pub mode: AttachMode,
    /// Whether an existing pinned link was re-adopted (no gap).
    pub adopted: bool,
    /// The pin of the link, when pinned.
    pub pin: Option<PathBuf>,
    /// The link when not pinned: dropping it detaches.
    link: Option<FdLink>,
}

/// Errors while attaching or detaching.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// No such interface.
    #[error("interface {0} does not exist (in this network namespace)")]
    UnknownInterface(String),
    /// Another XDP program is attached.
    #[error(
        "interface {iface} already has an XDP program that dockfw did not attach; \
         dockfw never replaces it unless --force is given ({source})"
    )]
    Foreign {
        /// Interface.
        iface: String,
        /// The kernel's refusal.
        #[source]
        source: ProgramError,
    },
    /// The kernel refused the attachment.
    #[error("attaching {mode} to {iface} failed: {source}")]
    Attach {
        /// Interface.
        iface: String,
        /// Mode tried.
        mode: AttachMode,
        /// aya's error.
        #[source]
        source: ProgramError,
    },
    /// A pinned link could not be used.
    #[error("pinned link {path} could not be used: {source}")]
    Link {
        /// Pin path.
        path: PathBuf,
        /// aya's error.
        #[source]
        source: LinkError,
    },
    /// Pinning failed.
    #[error("pinning the link at {path} failed: {message}")]
    Pin {
        /// Pin path.
        path: PathBuf,
        /// What happened.
        message: String,
    },
    /// Filesystem error on the pin directory.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was attempted.
        action: &'static str,
        /// Path.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The program could not be looked up.
    #[error(transparent)]
    Load(#[from] super::LoadError),
}

/// The interface index of `iface` in the calling thread's namespace.
pub fn ifindex(iface: &str) -> Option<u32> {
    let name = std::ffi::CString::new(iface).ok()?;
    // SAFETY: a valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    (index != 0).then_some(index)
}

/// Attaches (or re-adopts) the data plane on `iface`. With a pin directory
/// the link is pinned so enforcement outlives this process.
pub fn attach(
    dataplane: &mut Dataplane,
    iface: &str,
    requested: RequestedMode,
    pin_dir: Option<&Path>,
    force: bool,
) -> Result<Attachment, AttachError> {
    let ifindex = ifindex(iface).ok_or_else(|| AttachError::UnknownInterface(iface.into()))?;
    let pinned = pin_dir
        .map(|dir| pinned_modes(dir, iface))
        .unwrap_or_default();

    if let (Some(dir), Some(mode)) = (
        pin_dir,
        pinned.iter().find(|mode| mode.satisfies(requested)),
    ) {
        let path = link_pin(dir, iface, *mode);
        adopt(dataplane, &path, *mode)?;
        info!(iface, mode = %mode, "re-adopted the pinned link; enforcement had no gap");
        // Links of other modes left by an earlier run go (make before break).
        for other in pinned.iter().filter(|other| *other != mode) {
            remove_link_pin(&link_pin(dir, iface, *other))?;
        }
        return Ok(Attachment {
            iface: iface.into(),
            ifindex,
            mode: *mode,
            adopted: true,
            pin: Some(path),
            link: None,
        });
    }

    let (mode, link) = attach_fresh(dataplane, iface, requested, force)?;
    let mut attachment = Attachment {
        iface: iface.into(),
        ifindex,
        mode,
        adopted: false,
        pin: None,
        link: Some(link),
    };
    if let Some(dir) = pin_dir {
        let path = link_pin(dir, iface, mode);
        if let Some(links) = path.parent() {
            fs::create_dir_all(links).map_err(|source| AttachError::Io {
                action: "creating",
                path: links.to_path_buf(),
                source,
            })?;
        }
        if let Some(link) = attachment.link.take() {
            link.pin(&path).map_err(|error| AttachError::Pin {
                path: path.clone(),
                message: error.to_string(),
            })?;
        }
        attachment.pin = Some(path);
        for other in pinned.iter().filter(|other| **other != mode) {
            remove_link_pin(&link_pin(dir, iface, *other))?;
        }
    }
    info!(iface, mode = %mode, "attached");
    Ok(attachment)
}

fn adopt(dataplane: &mut Dataplane, path: &Path, mode: AttachMode) -> Result<(), AttachError> {
    let link_error = |source| AttachError::Link {
        path: path.to_path_buf(),
        source,
    };
    let pinned = PinnedLink::from_pin(path).map_err(link_error)?;
    let fd_link = FdLink::from(pinned);
    let attach_error = |source| AttachError::Attach {
        iface: path.display().to_string(),
        mode,
        source,
    };
    match mode {
        AttachMode::Tc => {
            let link = SchedClassifierLink::try_from(fd_link).map_err(link_error)?;
            let program = dataplane.tc()?;
            let id = program.attach_to_link(link).map_err(attach_error)?;
            // The pin keeps the link; our handle may go.
            let _ = program.take_link(id);
        }
        AttachMode::XdpNative | AttachMode::XdpGeneric => {
            let link = XdpLink::try_from(fd_link).map_err(link_error)?;
            let program = dataplane.xdp()?;
            let id = program.attach_to_link(link).map_err(attach_error)?;
            let _ = program.take_link(id);
        }
    }
    Ok(())
}

fn attach_fresh(
    dataplane: &mut Dataplane,
    iface: &str,
    requested: RequestedMode,
    force: bool,
) -> Result<(AttachMode, FdLink), AttachError> {
    let attach_xdp = |dataplane: &mut Dataplane, mode: AttachMode| -> Result<FdLink, AttachError> {
        let xdp_mode = if mode == AttachMode::XdpNative {
            XdpMode::Driver
        } else {
            XdpMode::Skb
        };
        let program = dataplane.xdp()?;
        let id = program
            .attach(iface, xdp_mode)
            .map_err(|source| classify_xdp_error(iface, mode, source))?;
        let link = program
            .take_link(id)
            .map_err(|source| AttachError::Attach {
                iface: iface.into(),
                mode,
                source,
            })?;
        FdLink::try_from(link).map_err(|source| AttachError::Link {
            path: PathBuf::from(iface),
            source,
        })
    };
    let with_force = |dataplane: &mut Dataplane, mode: AttachMode| match attach_xdp(dataplane, mode)
    {
        Err(AttachError::Foreign { .. }) if force => {
            warn!(
                iface,
                "--force: removing the XDP program another tool attached"
            );
            remove_foreign_xdp(iface)?;
            attach_xdp(dataplane, mode)
        }
        other => other,
    };
    match requested {
        RequestedMode::Native => Ok((
            AttachMode::XdpNative,
            with_force(dataplane, AttachMode::XdpNative)?,
        )),
        RequestedMode::Generic => Ok((
            AttachMode::XdpGeneric,
            with_force(dataplane, AttachMode::XdpGeneric)?,
        )),
        RequestedMode::Auto => match with_force(dataplane, AttachMode::XdpNative) {
            Ok(link) => Ok((AttachMode::XdpNative, link)),
            Err(error @ AttachError::Foreign { .. }) => Err(error),
            Err(error) => {
                warn!(iface, %error, "native XDP is not available here; falling back to generic XDP");
                Ok((
                    AttachMode::XdpGeneric,
                    with_force(dataplane, AttachMode::XdpGeneric)?,
                ))
            }
        },
        RequestedMode::Tc => {
            let program = dataplane.tc()?;
            let attach_error = |source| AttachError::Attach {
                iface: iface.into(),
                mode: AttachMode::Tc,
                source,
            };
            let id = program
                .attach(iface, TcAttachType::Ingress)
                .map_err(attach_error)?;
            let link = program.take_link(id).map_err(attach_error)?;
            let fd_link = FdLink::try_from(link).map_err(|source| AttachError::Link {
                path: PathBuf::from(iface),
                source,
            })?;
            Ok((AttachMode::Tc, fd_link))
        }
    }
}

/// An XDP attach refused because something else is there (EBUSY from a
/// netlink-attached program, EEXIST from another link) is "foreign".
fn classify_xdp_error(iface: &str, mode: AttachMode, source: ProgramError) -> AttachError {
    let busy = match &source {
        ProgramError::SyscallError(error) => matches!(
            error.io_error.raw_os_error(),
            Some(libc::EBUSY | libc::EEXIST)
        ),
        _ => false,
    };
    if busy {
        AttachError::Foreign {
            iface: iface.into(),
            source,
        }
    } else {
        AttachError::Attach {
            iface: iface.into(),
            mode,
            source,
        }
    }
}

/// Removes a netlink-attached XDP program with iproute2 (arguments passed as
/// a list; no shell).
fn remove_foreign_xdp(iface: &str) -> Result<(), AttachError> {
    for kind in ["xdpgeneric", "xdpdrv"] {
        let status = std::process::Command::new("ip")
            .args(["link", "set", "dev", iface, kind, "off"])
            .status()
            .map_err(|source| AttachError::Io {
                action: "running ip link set for",
                path: PathBuf::from(iface),
                source,
            })?;
        if !status.success() {
            warn!(iface, kind, "ip link set ... off failed");
        }
    }
    Ok(())
}

impl Attachment {
    /// Detaches: unpins the link (destroying it) or drops the owned link.
    pub fn detach(mut self) -> Result<(), AttachError> {
        if let Some(path) = self.pin.take() {
            remove_link_pin(&path)?;
        }
        drop(self.link.take());
        Ok(())
    }

    /// Leaves the program attached after this process exits (the link stays
    /// pinned). Without a pin this is not possible and the link goes with us.
    pub fn keep(mut self) {
        if self.link.is_some() {
            warn!(iface = %self.iface, "not pinned: the program detaches when dockfw exits");
        }
        drop(self.link.take());
    }
}
