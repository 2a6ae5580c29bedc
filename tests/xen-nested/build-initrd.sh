#!/bin/bash
# Build the dom0 initramfs from the Debian packages unpacked in $WORK/root.
#   GUEST=tiny-hvm (default) | linux-pvh | linux-hvm | linux-pv
# tiny-hvm: guest/tiny.S (a multiboot ELF that dirties pages) as an HVM guest of
# MEMORY MiB (default 32) with Debian's qemu-xen device model.
# linux-*: Debian's kernel with a busybox initramfs, 128 MiB (64 is too small).
# linux-pv: only the save works (Debian's hypervisor has no shadow paging, so
# PV live migration and Remus fail with "Failed to enable logdirty").
set -euo pipefail
N=${WORK:-/tmp/xen-nested}; HERE=$(cd "$(dirname "$0")" && pwd)
GUEST=${GUEST:-tiny-hvm}; MEMORY=${MEMORY:-32}; REMUS_SECONDS=${REMUS_SECONDS:-100}
R=$N/root
KV=$(basename "$(ls $R/boot/vmlinuz-* | head -1)" | sed "s/^vmlinuz-//")
I=$N/initrd
G=$N/guestrd
rm -rf $I $G; mkdir -p $I $G
export LD_LIBRARY_PATH=$R/usr/lib/x86_64-linux-gnu:$R/usr/lib/xen-4.17/lib/x86_64-linux-gnu
copybin() { # copy a binary and the libraries it needs
  local src=$1 dst=$2
  mkdir -p "$(dirname $I/$dst)"; cp -L "$src" "$I/$dst"
  ldd "$src" | awk '/=>/ {print $3} $1 ~ /^\/lib64/ {print $1}' | while read -r l; do
    [ -f "$l" ] || continue
    case $l in
      /lib64/*) mkdir -p $I/lib64; cp -L "$l" $I/lib64/ ;;
      *) mkdir -p $I/lib/x86_64-linux-gnu; cp -L "$l" $I/lib/x86_64-linux-gnu/ ;;
    esac
  done
}
mkdir -p $I/{bin,sbin,etc,dev,proc,sys,tmp,out,guest,run,mnt} $I/var/{run/xen,run/xenstored,lib/xen,lib/xenstored,log/xen/console} $I/etc/xen
cp /bin/busybox $I/bin/busybox
XB=$R/usr/lib/xen-4.17/bin
for b in xl xenstored xenconsoled xen-init-dom0 libxl-save-helper xenconsole; do
  copybin $XB/$b /usr/lib/xen-4.17/bin/$b
done
cp -a $R/usr/lib/x86_64-linux-gnu/libxen* $R/usr/lib/x86_64-linux-gnu/libyajl* $I/lib/x86_64-linux-gnu/
copybin /usr/bin/tcpdump /usr/bin/tcpdump
cp -L /lib/x86_64-linux-gnu/libgcc_s.so.1 $I/lib/x86_64-linux-gnu/  # dlopen'ed by glibc's pthread_cancel
echo 'root:x:0:0:root:/root:/bin/sh' > $I/etc/passwd; echo 'root:x:0:' > $I/etc/group
echo '127.0.0.1 localhost' > $I/etc/hosts
touch $I/etc/xen/xl.conf
M=$R/lib/modules/$KV/kernel
mkdir -p $I/mods; : > $I/mods/order
for m in drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_modern_dev \
         drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci drivers/block/virtio_blk \
         drivers/xen/xen-evtchn drivers/xen/xen-gntdev drivers/xen/xen-gntalloc \
         drivers/xen/xen-privcmd drivers/xen/xenfs/xenfs; do
  cp $M/$m.ko $I/mods/; echo "$(basename $m).ko" >> $I/mods/order
done
hvm_model() { # the qemu-xen device model, hvmloader and the BIOS it loads
  copybin $R/usr/libexec/xen-qemu-system-i386 /usr/libexec/xen-qemu-system-i386
  mkdir -p $I/usr/lib/xen-4.17/boot $I/usr/share/qemu
  cp $R/usr/lib/xen-4.17/boot/hvmloader $I/usr/lib/xen-4.17/boot/
  cp -a /usr/share/seabios $I/usr/share/
  for f in keymaps linuxboot.bin linuxboot_dma.bin kvmvapic.bin multiboot.bin multiboot_dma.bin pvh.bin; do
    [ -e /usr/share/qemu/$f ] && cp -a /usr/share/qemu/$f $I/usr/share/qemu/
  done
}
linux_guest() { # Debian's kernel and a busybox initramfs that says it booted, then idles
  mkdir -p $G/bin $G/proc $G/sys $G/dev
  cp /bin/busybox $G/bin/busybox
  printf '%s\n' '#!/bin/busybox sh' '/bin/busybox --install -s /bin' \
    'mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev' \
    'echo "GUEST: booted"' 'while true; do sleep 1; done' > $G/init
  chmod +x $G/init
  (cd $G && find . | cpio -R 0:0 -H newc -o 2>/dev/null | gzip -9) > $I/guest/initrd.gz
  cp $R/boot/vmlinuz-$KV $I/guest/vmlinuz
}
case $GUEST in
  tiny-hvm)
    as --32 -o $N/tiny.o $HERE/guest/tiny.S
    ld -m elf_i386 -T $HERE/guest/tiny.ld -o $I/guest/tiny.elf $N/tiny.o
    hvm_model
    cat > $I/guest/guest.cfg <<GC
name = "tiny-hvm"
type = "hvm"
device_model_version = "qemu-xen"
kernel = "/guest/tiny.elf"
memory = $MEMORY
maxmem = $MEMORY
vcpus = 1
vnc = 0
sdl = 0
vga = "none"
serial = "pty"
on_crash = "preserve"
on_reboot = "destroy"
GC
    ;;
  linux-pvh|linux-hvm|linux-pv)
    linux_guest
    t=${GUEST#linux-}
    {
      echo "name = \"linux-$t\""; echo "type = \"$t\""
      echo 'kernel = "/guest/vmlinuz"'; echo 'ramdisk = "/guest/initrd.gz"'
      if [ "$t" = hvm ]; then
        hvm_model
        echo 'device_model_version = "qemu-xen"'; echo 'cmdline = "console=ttyS0 rdinit=/init quiet"'
        echo 'vnc = 0'; echo 'sdl = 0'; echo 'vga = "none"'; echo 'serial = "pty"'
      else
        echo 'extra = "console=hvc0 rdinit=/init quiet"'
      fi
      echo 'memory = 128'; echo 'maxmem = 128'; echo 'vcpus = 1'
      echo 'on_crash = "preserve"'; echo 'on_reboot = "destroy"'
    } > $I/guest/guest.cfg
    ;;
  *) echo "unknown GUEST $GUEST (tiny-hvm, linux-pvh, linux-hvm or linux-pv)" >&2; exit 2 ;;
esac
echo "$REMUS_SECONDS" > $I/guest/remus-seconds
cp $HERE/dom0-init.sh $I/init; chmod +x $I/init
cp $HERE/mig-ssh.sh $I/bin/mig-ssh; chmod +x $I/bin/mig-ssh
(cd $I && find . | cpio -R 0:0 -H newc -o 2>/dev/null | gzip -1) > $N/dom0-initrd.gz
ls -la $N/dom0-initrd.gz
