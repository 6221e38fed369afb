using System.Text;

namespace CoeffTune.IO;

/// <summary>
/// Writes a file under a unique temporary name beside it, then renames it into place, so a reader sees
/// either the old file or the whole new one, and a crash leaves no half-written file under the real name.
/// </summary>
public static class AtomicFile
{
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
}
