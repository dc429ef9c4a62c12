"""Speech: what is said in a video, transcribed as an indexing stage (faster-whisper) and stored with word times."""
