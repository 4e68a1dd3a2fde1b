"""Kernel tree at a revision -> C translation unit -> callable userspace module."""
