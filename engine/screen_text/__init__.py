"""On-screen text: lines read from the frames where text can be (RapidOCR), as an indexing stage."""
