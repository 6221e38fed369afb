using System.Runtime.CompilerServices;

// The fetch logic is tested with stand-in tools instead of real downloads.
[assembly: InternalsVisibleTo("CoeffTune.Tests")]
