//! What `--run`/`--check` boot: the images of the requested formats, built now or given with
//! `--image`.

use std::path::{Path, PathBuf};

use formats::Format;

use crate::{
    exit::{bad_input, Exit},
    request::BuildRequest,
};

/// One image to boot, with its format.
#[derive(Debug, Clone)]
pub struct Target {
    /// The format, which decides how it boots.
    pub format: &'static Format,
    /// The image file or build result directory.
    pub image: PathBuf,
    /// The image it is checked with (lxc-metadata: the lxc root file system of the same
    /// command), set by [`pair_metadata`].
    pub pair: Option<PathBuf>,
}

/// Pairs every lxc-metadata target with the first lxc target of the same command (its root
/// file system, which the metadata must describe and which is then booted); one without is
/// left unpaired and fails with the harness's one-line reason.
pub fn pair_metadata(targets: &mut [Target]) {
    let rootfs = targets
        .iter()
        .find(|t| t.format.name == harness::container::METADATA_PAIR)
        .map(|t| t.image.clone());
    for t in targets.iter_mut() {
        if t.format.profile == formats::Profile::ContainerMetadata {
            t.pair = rootfs.clone();
        }
    }
}

/// The systems `--run`/`--check` boot: x86_64 with KVM or TCG, aarch64 on qemu-system-aarch64
/// under TCG (U-Boot for the SD card images, AAVMF for UEFI disks).
pub const BOOTS_SYSTEMS: &[&str] = &["x86_64-linux", "aarch64-linux"];

/// Checks that every requested format can be booted here, before anything is built.
pub fn check_bootable(request: &BuildRequest, run: bool) -> Result<(), Exit> {
    if request.format_path.is_some() {
        return Err(bad_input(
            "--run/--check need a built-in format (its boot profile): drop --format-path or build it first and pass --image",
        ));
    }
    if let Some(system) = request
        .system
        .as_deref()
        .filter(|s| !BOOTS_SYSTEMS.contains(s))
    {
        return Err(bad_input(format!(
            "--run/--check boot x86_64-linux and aarch64-linux images only, not {system}: drop --system {system}, or build without --run/--check"
        )));
    }
    if run && request.formats.len() != 1 {
        return Err(bad_input("--run boots one format: pass a single -f"));
    }
    if run
        && request
            .formats
            .iter()
            .any(|f| f.profile == formats::Profile::ContainerMetadata)
    {
        return Err(bad_input(
            "--run boots one format and lxc-metadata is checked with its lxc pair: --run -f lxc boots the root file system, --check -f lxc -f lxc-metadata checks the pair",
        ));
    }
    for f in &request.formats {
        if let Some(why) = &f.not_checked {
            return Err(bad_input(format!(
                "format {} cannot be checked ({why}); nixos-generate --list names the formats --check boots",
                f.name
            )));
        }
    }
    Ok(())
}

/// The targets for `--image PATH...`, paired in order with the `-f` names as given (a format
/// may repeat here: several images of one format).
pub fn from_images(names: &[String], images: &[PathBuf], cwd: &Path) -> Result<Vec<Target>, Exit> {
    if images.len() != names.len() {
        return Err(bad_input(format!(
            "{} --image for {} -f: pair each --image with the -f FORMAT of that image, in order",
            images.len(),
            names.len()
        )));
    }
    names
        .iter()
        .zip(images)
        .map(|(name, image)| {
            let format = formats::registry()
                .get(name)
                .ok_or_else(|| crate::request::unknown_format(name))?;
            from_image(format, image, cwd)
        })
        .collect()
}

fn from_image(format: &'static Format, image: &Path, cwd: &Path) -> Result<Target, Exit> {
    let image = cwd.join(image);
    if !image.exists() {
        return Err(bad_input(format!(
            "--image {}: no such file or directory",
            image.display()
        )));
    }
    let file = if image.is_dir() {
        format.locate(&image).ok_or_else(|| {
            bad_input(format!(
                "--image {}: the directory holds no {} image (looked for {:?})",
                image.display(),
                format.name,
                format.output
            ))
        })?
    } else {
        image.clone()
    };
    // A device, FIFO or empty file is no image (checked without opening: a FIFO would block).
    harness::image::check_regular(&file).map_err(|e| match e {
        harness::HarnessError::BadImage { path, detail } => {
            bad_input(format!("--image {}: {detail}", path.display()))
        }
        e => bad_input(e.to_string()),
    })?;
    Ok(Target {
        format,
        image,
        pair: None,
    })
}
