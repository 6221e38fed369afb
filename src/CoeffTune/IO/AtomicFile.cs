using System.Text;

namespace CoeffTune.IO;

/// <summary>
/// Writes a file or a whole folder under a unique temporary name beside it, then renames it into place, so a
/// reader sees either the old content or the whole new one, and a crash leaves nothing half-written under the
/// real name. Temporary files are named <c>.NAME.*.tmp</c> (<see cref="TempFilePattern"/>) and temporary folders
/// <c>.tmp-NAME-*</c> (<see cref="TempDirectoryPattern"/>), so what an interrupted write left behind can be found and removed.
/// </summary>
public static class AtomicFile
{
    /// <summary>The start of every temporary folder's name (<see cref="WriteDirectory"/>).</summary>
    public const string TempDirectoryPrefix = ".tmp-";
    /// <summary>A search pattern matching the temporary folders <see cref="WriteDirectory"/> makes.</summary>
    public const string TempDirectoryPattern = TempDirectoryPrefix + "*";
    /// <summary>A search pattern matching the temporary files <see cref="Write"/> makes.</summary>
    public const string TempFilePattern = ".*.tmp";

    /// <summary>Calls <paramref name="write"/> with a fresh temporary path in the target's folder, then renames it to <paramref name="path"/>.</summary>
    public static void Write(string path, Action<string> write)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            write(tmp);
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    public static void WriteAllBytes(string path, byte[] bytes) => Write(path, tmp => File.WriteAllBytes(tmp, bytes));

    public static void WriteAllText(string path, string text) => Write(path, tmp => File.WriteAllText(tmp, text, new UTF8Encoding(false)));

    /// <summary>
    /// Writes the folder <paramref name="dir"/> as a whole: <paramref name="fill"/> gets a fresh, empty temporary
    /// folder beside it to write into; then any existing <paramref name="dir"/> is renamed aside, the new folder
    /// renamed in, and the old one deleted. <paramref name="dir"/> never holds a mix of old and new files: a crash
    /// between the two renames leaves no folder under the name rather than a mixed one. When <paramref name="fill"/>
    /// throws, the existing folder is left as it was and the temporary folder is removed.
    /// </summary>
    public static void WriteDirectory(string dir, Action<string> fill)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir));
        var parent = Path.GetDirectoryName(full)
            ?? throw new ArgumentException($"{dir}: a root folder cannot be replaced as a whole", nameof(dir));
        var name = Path.GetFileName(full);
        Directory.CreateDirectory(parent);
        var tmp = Path.Combine(parent, $"{TempDirectoryPrefix}{name}-{Guid.NewGuid():N}");
        var old = Path.Combine(parent, $"{TempDirectoryPrefix}{name}-old-{Guid.NewGuid():N}");
        Directory.CreateDirectory(tmp);
        bool aside = false;
        try
        {
            fill(tmp);
            if (Directory.Exists(full))
            {
                Directory.Move(full, old);
                aside = true;
            }
            Directory.Move(tmp, full);
        }
        catch
        {
            // The old folder goes back under its name if the new one did not get there.
            if (aside && !Directory.Exists(full)) Directory.Move(old, full);
            TryDelete(tmp);
            throw;
        }
        // The new folder is in place; an old one that cannot be deleted now is a leftover the run folder's cleanup removes.
        if (aside) TryDelete(old);
    }

    private static void TryDelete(string folder)
    {
        try
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
