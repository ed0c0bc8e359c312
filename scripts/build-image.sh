#!/usr/bin/env bash
# Build the systemd base image for one Debian release (bullseye, bookworm or trixie)
# with debootstrap + docker import: no container registry needed.
# The image carries a label with the hash of this recipe and the mirror;
# an image whose label matches is never rebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

release=${1:?usage: build-image.sh bullseye|bookworm|trixie}
case $release in
  bullseye) image=lvd/debian11-systemd ;;
  bookworm) image=lvd/debian12-systemd ;;
  trixie) image=lvd/debian13-systemd ;;
  *) die "unknown release '$release': use bullseye, bookworm or trixie" ;;
esac

sources=/etc/apt/sources.list.d/debian.sources
[[ -r $sources ]] || die "$sources is missing: the images take their apt mirror from it"
mirror=$(awk '/^URIs:/ {print $2; exit}' "$sources")
packages=systemd,systemd-sysv,python3,python3-apt,sudo,ca-certificates,iproute2,procps,openssh-server

recipe=$( (cat "$0"; echo "$mirror") | sha256sum | cut -c1-16)
have=$("$DOCKER" image inspect -f '{{ index .Config.Labels "lvd.recipe" }}' "$image:latest" 2>/dev/null || true)
if [[ $have == "$recipe" ]]; then exit 0; fi

say "building $image ($release, recipe $recipe)"
rootfs=$(mktemp -d /var/tmp/lvd-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --include="$packages" "$release" "$rootfs" "$mirror" \
  > "$rootfs.log" 2>&1 || { tail -20 "$rootfs.log"; die "debootstrap $release failed (log above)"; }
rm -f "$rootfs.log"

# apt inside the image uses the host's mirror with the image's own codename.
rm -f "$rootfs/etc/apt/sources.list"
sed "s/bookworm/$release/g" "$sources" > "$rootfs/etc/apt/sources.list.d/debian.sources"
# Units that cannot work in a container would leave systemd "degraded".
for unit in getty@tty1.service systemd-remount-fs.service systemd-firstboot.service \
  console-getty.service sys-kernel-config.mount; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
# Keys only: the lab installs its own public key when it starts a host.
cat > "$rootfs/etc/ssh/sshd_config.d/lvd.conf" <<'CONF'
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
CONF
# Each container gets its own machine-id from systemd at first boot.
: > "$rootfs/etc/machine-id"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
# The lists are empty: make them look ancient, or apt's cache_valid_time would
# take them for fresh and skip the update on a new container.
touch -d @0 "$rootfs/var/lib/apt/lists"

tar -C "$rootfs" -c . | "$DOCKER" import \
  --change 'CMD ["/lib/systemd/systemd"]' \
  --change 'ENV container=docker' \
  --change "LABEL lvd.recipe=$recipe" \
  - "$image:latest" >/dev/null
say "built $image:latest"
