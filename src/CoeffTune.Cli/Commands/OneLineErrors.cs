using CoeffTune.Assets;

namespace CoeffTune.Cli.Commands;

/// <summary>
/// System.CommandLine's invocation catches exceptions itself and prints a stack trace; commands that
/// load files or reach a registry report expected failures as one line and exit 1 instead.
/// </summary>
internal static class OneLineErrors
{
    public static int Run(Func<int> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (e is ArgumentException or IOException or InvalidDataException or InvalidOperationException
                                       or UnauthorizedAccessException or FormatException or AssetUnavailableException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}
