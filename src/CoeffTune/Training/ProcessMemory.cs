namespace CoeffTune.Training;

/// <summary>This process's resident memory, from /proc/self/status on Linux (the working set elsewhere).</summary>
public static class ProcessMemory
{
    /// <summary>Peak resident set size (VmHWM).</summary>
    public static long PeakBytes() => Status("VmHWM:") ?? Environment.WorkingSet;

    /// <summary>Current resident set size (VmRSS).</summary>
    public static long CurrentBytes() => Status("VmRSS:") ?? Environment.WorkingSet;

    /// <summary>Resets the kernel's high-water mark (Linux: clear_refs 5); false where that is not possible.</summary>
    public static bool ResetPeak()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); return true; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    // Lines look like "VmRSS:\t  123456 kB"; the number may follow the tab directly.
    private static long? Status(string key)
    {
        try
        {
            var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith(key, StringComparison.Ordinal));
            if (line is null) return null;
            var fields = line[key.Length..].Split(new[] { ' ', '\t' }, StringSplitOptions.RemoveEmptyEntries);
            return long.Parse(fields[0]) * 1024;
        }
        catch (IOException) { return null; }
    }
}
