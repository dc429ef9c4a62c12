"""Files for other programs: marker lists (EDL, FCPXML) that video editors import."""
