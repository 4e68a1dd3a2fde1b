#!/usr/bin/perl
# Bulk import for mmukit.inbox.LocalInbox.deliver_many: every file in DIR (sorted) into
# the inbox NAME of $PI_CONFIG, in one process and one commit. Prints the number added.
use strict;
use warnings;
use PublicInbox::Config;
use PublicInbox::InboxWritable;
use PublicInbox::Eml;

my ($name, $dir) = @ARGV;
die "usage: pi_import.pl NAME DIR\n" unless defined $dir;
my $cfg = PublicInbox::Config->new;
my $ibx = $cfg->lookup_name($name) or die "no inbox $name in $ENV{PI_CONFIG}\n";
$ibx = PublicInbox::InboxWritable->new($ibx);
my $im = $ibx->importer(0);
opendir(my $dh, $dir) or die "$dir: $!\n";
my @files = sort grep { /\.eml\z/ } readdir($dh);
closedir($dh);
my $n = 0;
for my $f (@files) {
	open(my $fh, '<', "$dir/$f") or die "$dir/$f: $!\n";
	my $raw = do { local $/; <$fh> };
	close($fh);
	$n++ if $im->add(PublicInbox::Eml->new(\$raw));
}
$im->done;
print "$n\n";
